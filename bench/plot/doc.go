// Package plot draws the bench tool's figures with gonum/plot: the
// latency distribution of runs (one cumulative curve per summary) and the
// MetaStore/etcd ratios of a comparison. The file name's extension picks
// the format: .png, .svg, .pdf, .eps, .jpg or .tiff.
package plot
