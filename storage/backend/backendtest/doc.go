// Package backendtest holds the conformance suite every storage/backend
// engine must pass. Engines call Run from their own tests with a function
// that opens a fresh, empty backend.
package backendtest
