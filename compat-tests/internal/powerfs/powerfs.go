package powerfs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// FS is a FUSE loopback file system over a backing directory that
// remembers, for every file written since its last fsync, what the file
// held at that fsync. Cut forgets every write not made durable — the
// file's data as a power loss leaves it — and mounts the file system
// again. Creating, renaming and removing files and directories count as
// durable at once (a journalling file system's metadata after a commit);
// only file data is lost.
type FS struct {
	backing, mnt string

	mu    sync.Mutex
	srv   *fuse.Server
	dirty map[*node]bool
	cuts  int
}

// Supported reports why this process cannot mount a FUSE file system
// (it needs /dev/fuse and root for mount(2)), or nil.
func Supported() error {
	if os.Geteuid() != 0 {
		return errors.New("powerfs: needs root to mount a FUSE file system")
	}
	f, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("powerfs: %w", err)
	}
	f.Close()
	return nil
}

// Mount mounts a file system at mnt whose files live in backing; both
// directories must exist.
func Mount(backing, mnt string) (*FS, error) {
	f := &FS{backing: backing, mnt: mnt, dirty: map[*node]bool{}}
	if err := f.mount(); err != nil {
		return nil, err
	}
	return f, nil
}

func (f *FS) mount() error {
	ops, err := fs.NewLoopbackRoot(f.backing)
	if err != nil {
		return err
	}
	root := &node{LoopbackNode: ops.(*fs.LoopbackNode), fsys: f}
	timeout := time.Second
	srv, err := fs.Mount(f.mnt, root, &fs.Options{
		EntryTimeout: &timeout,
		AttrTimeout:  &timeout,
		MountOptions: fuse.MountOptions{
			DirectMount:       true,
			DirectMountStrict: true, // no fusermount here: mount(2) as root
			FsName:            "powerfs",
			Name:              "powerfs",
		},
	})
	if err != nil {
		return fmt.Errorf("powerfs: mount %s: %w", f.mnt, err)
	}
	f.mu.Lock()
	f.srv = srv
	f.mu.Unlock()
	return nil
}

// Cut is the power loss: every file written since its last fsync gets
// back the data it had then (its size too), and the file system is
// mounted again, so that nothing the kernel cached survives. The
// processes using it must be gone (SIGKILLed) first. It returns how
// many files lost data.
func (f *FS) Cut() (int, error) {
	f.mu.Lock()
	nodes := f.dirty
	f.dirty = map[*node]bool{}
	f.cuts++
	f.mu.Unlock()
	var errs []error
	for n := range nodes {
		errs = append(errs, n.revert())
	}
	errs = append(errs, f.unmount(), f.mount())
	return len(nodes), errors.Join(errs...)
}

// Unmount unmounts the file system (a test's cleanup); the backing
// directory keeps what was written, durable or not.
func (f *FS) Unmount() error {
	f.mu.Lock()
	for n := range f.dirty {
		n.drop()
	}
	f.dirty = map[*node]bool{}
	f.mu.Unlock()
	return f.unmount()
}

func (f *FS) unmount() error {
	f.mu.Lock()
	srv := f.srv
	f.srv = nil
	f.mu.Unlock()
	if srv == nil {
		return nil
	}
	var err error
	for range 50 { // the kernel may still be releasing a dead process's files
		if err = srv.Unmount(); err == nil {
			srv.Wait()
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("powerfs: unmount %s: %w", f.mnt, err)
}

// extent is the data a write overwrote in a file's durable part.
type extent struct {
	off int64
	old []byte
}

// node is a loopback node that records, from the first write after an
// fsync, how to undo the writes up to the next one.
type node struct {
	*fs.LoopbackNode
	fsys *FS

	mu    sync.Mutex
	dirty bool
	f     *os.File // the backing file, while dirty (valid across renames)
	size  int64    // the durable size
	undo  []extent // oldest first
}

var (
	_ fs.NodeWrapChilder    = (*node)(nil)
	_ fs.NodeOpener         = (*node)(nil)
	_ fs.NodeCreater        = (*node)(nil)
	_ fs.NodeSetattrer      = (*node)(nil)
	_ fs.NodeCopyFileRanger = (*node)(nil)
)

// WrapChild makes every node of the tree a *node.
func (n *node) WrapChild(ctx context.Context, ops fs.InodeEmbedder) fs.InodeEmbedder {
	return &node{LoopbackNode: ops.(*fs.LoopbackNode), fsys: n.fsys}
}

func (n *node) backingPath() string {
	return filepath.Join(n.fsys.backing, n.Path(nil))
}

// capture records what [off, off+length) holds in the durable part of
// the file before a write changes it.
func (n *node) capture(off, length int64) syscall.Errno {
	return n.captureAt("", off, length)
}

// captureAt is capture for a node not linked into the tree yet: path is
// its backing file.
func (n *node) captureAt(path string, off, length int64) syscall.Errno {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.dirty {
		if path == "" {
			path = n.backingPath()
		}
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			return fs.ToErrno(err)
		}
		st, err := f.Stat()
		if err != nil {
			f.Close()
			return fs.ToErrno(err)
		}
		n.dirty, n.f, n.size, n.undo = true, f, st.Size(), nil
		n.fsys.mu.Lock()
		n.fsys.dirty[n] = true
		n.fsys.mu.Unlock()
	}
	if off >= n.size || length <= 0 {
		return 0
	}
	end := min(off+length, n.size)
	old := make([]byte, end-off)
	k, err := n.f.ReadAt(old, off)
	if err != nil && k < len(old) {
		// Shorter than the durable size already (a truncation
		// recorded before): what is past k was saved then.
		old = old[:k]
	}
	n.undo = append(n.undo, extent{off, old})
	return 0
}

// synced forgets the undo record: everything written is durable.
func (n *node) synced() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.dirty {
		return
	}
	n.fsys.mu.Lock()
	delete(n.fsys.dirty, n)
	n.fsys.mu.Unlock()
	n.dropLocked()
}

func (n *node) drop() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.dropLocked()
}

func (n *node) dropLocked() {
	if n.f != nil {
		n.f.Close()
	}
	n.dirty, n.f, n.size, n.undo = false, nil, 0, nil
}

// revert puts the durable data back: the overwritten extents, newest
// first, and the durable size.
func (n *node) revert() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.dirty {
		return nil
	}
	defer n.dropLocked()
	for i := len(n.undo) - 1; i >= 0; i-- {
		e := n.undo[i]
		if _, err := n.f.WriteAt(e.old, e.off); err != nil {
			return fmt.Errorf("powerfs: revert %s: %w", n.f.Name(), err)
		}
	}
	if err := n.f.Truncate(n.size); err != nil {
		return fmt.Errorf("powerfs: revert %s: %w", n.f.Name(), err)
	}
	return n.f.Sync()
}

func (n *node) wrap(fh fs.FileHandle) fs.FileHandle {
	if lf, ok := fh.(*fs.LoopbackFile); ok {
		return &file{LoopbackFile: lf, n: n}
	}
	return fh
}

// Open records the file's data first when O_TRUNC will drop it.
func (n *node) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	if flags&syscall.O_TRUNC != 0 {
		if errno := n.capture(0, 1<<62); errno != 0 {
			return nil, 0, errno
		}
	}
	fh, fl, errno := n.LoopbackNode.Open(ctx, flags)
	if errno != 0 {
		return nil, 0, errno
	}
	return n.wrap(fh), fl, 0
}

// Create makes a file whose data is not durable until its first fsync.
func (n *node) Create(ctx context.Context, name string, flags, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	ch, fh, fl, errno := n.LoopbackNode.Create(ctx, name, flags, mode, out)
	if errno != 0 {
		return nil, nil, 0, errno
	}
	c := ch.Operations().(*node)
	if errno := c.captureAt(filepath.Join(n.backingPath(), name), 0, 0); errno != 0 {
		return nil, nil, 0, errno
	}
	return ch, c.wrap(fh), fl, 0
}

// Setattr records what a truncation by path drops (one through an open
// file goes through file.Setattr).
func (n *node) Setattr(ctx context.Context, f fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if sz, ok := in.GetSize(); ok && f == nil {
		if errno := n.capture(int64(sz), 1<<62); errno != 0 {
			return errno
		}
	}
	return n.LoopbackNode.Setattr(ctx, f, in, out)
}

// CopyFileRange is refused, so that the kernel copies through reads and
// writes this file system sees.
func (n *node) CopyFileRange(ctx context.Context, fhIn fs.FileHandle, offIn uint64, out *fs.Inode, fhOut fs.FileHandle, offOut uint64, length uint64, flags uint64) (uint32, syscall.Errno) {
	return 0, syscall.ENOSYS
}

// file is an open file whose writes are recorded before they are made.
type file struct {
	*fs.LoopbackFile
	n *node
}

func (f *file) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	if errno := f.n.capture(off, int64(len(data))); errno != 0 {
		return 0, errno
	}
	return f.LoopbackFile.Write(ctx, data, off)
}

func (f *file) Writev(ctx context.Context, data [][]byte, off int64) (uint32, syscall.Errno) {
	var size int64
	for _, d := range data {
		size += int64(len(d))
	}
	if errno := f.n.capture(off, size); errno != 0 {
		return 0, errno
	}
	return f.LoopbackFile.Writev(ctx, data, off)
}

func (f *file) Setattr(ctx context.Context, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if sz, ok := in.GetSize(); ok {
		if errno := f.n.capture(int64(sz), 1<<62); errno != 0 {
			return errno
		}
	}
	return f.LoopbackFile.Setattr(ctx, in, out)
}

func (f *file) Allocate(ctx context.Context, off, size uint64, mode uint32) syscall.Errno {
	// Plain fallocate only reserves (reads stay zeros past the end);
	// the other modes (punch hole, zero range) change data.
	length := int64(size)
	if mode == 0 {
		length = 0
	}
	if errno := f.n.capture(int64(off), length); errno != 0 {
		return errno
	}
	return f.LoopbackFile.Allocate(ctx, off, size, mode)
}

// Fsync makes the file's data durable: Cut keeps it from now on.
func (f *file) Fsync(ctx context.Context, flags uint32) syscall.Errno {
	if errno := f.LoopbackFile.Fsync(ctx, flags); errno != 0 {
		return errno
	}
	f.n.synced()
	return 0
}

// PassthroughFd is refused: every read and write must come here.
func (f *file) PassthroughFd() (int, bool) { return 0, false }
