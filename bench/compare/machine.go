package compare

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Machine describes where a comparison ran.
type Machine struct {
	CPU        string        `json:"cpu"`
	CPUs       int           `json:"cpus"`
	MemoryGiB  float64       `json:"memory_gib"`
	Kernel     string        `json:"kernel"`
	Filesystem string        `json:"filesystem"`   // of the data dirs
	Fdatasync  time.Duration `json:"fdatasync_ns"` // median of a 4 KiB write + fdatasync there
	Go         string        `json:"go"`
}

// String describes the machine in one line, for tables and logs.
func (m Machine) String() string {
	return fmt.Sprintf("%d × %s, %.0f GiB, Linux %s, %s (4 KiB write + fdatasync: %s), %s",
		m.CPUs, m.CPU, m.MemoryGiB, m.Kernel, m.Filesystem, m.Fdatasync.Round(time.Microsecond), m.Go)
}

// DescribeMachine gathers the machine's facts; dir is where the data dirs
// go (its filesystem and sync latency matter most for writes).
func DescribeMachine(dir string) Machine {
	m := Machine{CPUs: runtime.NumCPU(), Go: runtime.Version(), CPU: "unknown CPU", Filesystem: "unknown filesystem"}
	if v, ok := procField("/proc/cpuinfo", "model name"); ok {
		m.CPU = v
	}
	if v, ok := procField("/proc/meminfo", "MemTotal"); ok {
		var kb float64
		if _, err := fmt.Sscanf(v, "%f kB", &kb); err == nil {
			m.MemoryGiB = kb / (1 << 20)
		}
	}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		m.Kernel = unix.ByteSliceToString(u.Release[:])
	}
	var st unix.Statfs_t
	if unix.Statfs(dir, &st) == nil {
		m.Filesystem = fsName(int64(st.Type))
	}
	if d, err := fdatasyncLatency(dir); err == nil {
		m.Fdatasync = d
	}
	return m
}

func procField(path, name string) (string, bool) {
	f, err := os.Open(path)
	if err != nil {
		return "", false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == name {
			return strings.TrimSpace(v), true
		}
	}
	return "", false
}

func fsName(magic int64) string {
	switch magic {
	case unix.EXT4_SUPER_MAGIC:
		return "ext4"
	case unix.XFS_SUPER_MAGIC:
		return "xfs"
	case unix.BTRFS_SUPER_MAGIC:
		return "btrfs"
	case unix.TMPFS_MAGIC:
		return "tmpfs (no real fsync)"
	case unix.OVERLAYFS_SUPER_MAGIC:
		return "overlayfs"
	}
	return fmt.Sprintf("filesystem 0x%x", magic)
}

// fdatasyncLatency is the median of 50 rounds of a 4 KiB write and
// fdatasync in dir: the floor of an acknowledged write on this disk.
func fdatasyncLatency(dir string) (time.Duration, error) {
	f, err := os.CreateTemp(dir, ".fsync-probe-")
	if err != nil {
		return 0, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	buf := make([]byte, 4096)
	if err := unix.Fallocate(int(f.Fd()), 0, 0, 50*4096); err != nil {
		return 0, err
	}
	if err := f.Sync(); err != nil {
		return 0, err
	}
	var ds []time.Duration
	for i := range 50 {
		t0 := time.Now()
		if _, err := f.WriteAt(buf, int64(i)*4096); err != nil {
			return 0, err
		}
		if err := unix.Fdatasync(int(f.Fd())); err != nil {
			return 0, err
		}
		ds = append(ds, time.Since(t0))
	}
	slices.Sort(ds)
	return ds[len(ds)/2], nil
}

// EtcdMainSource is the main package that builds etcd: its own main
// module is not served by the Go module proxy, its entry point
// etcdmain.Main is (in go.etcd.io/etcd/server/v3).
const EtcdMainSource = "package main\n\nimport (\n\t\"os\"\n\n\t\"go.etcd.io/etcd/server/v3/etcdmain\"\n)\n\nfunc main() { etcdmain.Main(os.Args) }\n"

// DefaultEtcdCache is where BuildEtcd keeps etcd builds:
// <user cache dir>/metastore/etcd-<version>/etcd (shared with the
// repository's tests).
func DefaultEtcdCache(version string) (string, error) {
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(cache, "metastore", "etcd-"+version, "etcd"), nil
}

// BuildEtcd returns the etcd binary of version at bin, building it from
// the Go module proxy first if it is not there.
func BuildEtcd(ctx context.Context, version, bin string) error {
	if _, err := os.Stat(bin); err == nil {
		return nil
	}
	src, err := os.MkdirTemp("", "etcd-build-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(src)
	files := map[string]string{"go.mod": "module etcdbuild\n\ngo 1.26\n", "main.go": EtcdMainSource}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(src, name), []byte(content), 0o600); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		return err
	}
	for _, args := range [][]string{
		// grpc pinned as etcd's release does; newer ones changed APIs it uses.
		{"get", "go.etcd.io/etcd/server/v3@" + version, "google.golang.org/grpc@v1.83.2"},
		{"build", "-o", bin, "."},
	} {
		cmd := exec.CommandContext(ctx, "go", args...)
		cmd.Dir = src
		cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("building etcd %s: go %s: %w\n%s", version, strings.Join(args, " "), err, out)
		}
	}
	return nil
}
