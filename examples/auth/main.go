// Command auth walks through etcd's authentication and access control on
// a MetaStore (or etcd) endpoint with clientv3: it creates the root user
// and a user that may only read and write keys under "app/", turns auth
// on, shows what each may do, and turns auth off again.
//
//	go run ./auth -endpoints 127.0.0.1:2379
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

func main() { os.Exit(cli(os.Args[1:], os.Stdout, os.Stderr)) }

// cli runs the example with command-line args and returns the exit code.
func cli(args []string, out, errOut io.Writer) int {
	fs := flag.NewFlagSet("auth", flag.ContinueOnError)
	fs.SetOutput(errOut)
	eps := fs.String("endpoints", "127.0.0.1:2379", "comma-separated endpoints")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if err := run(out, strings.Split(*eps, ",")); err != nil {
		fmt.Fprintln(errOut, "auth example:", err)
		return 1
	}
	return 0
}

func connect(eps []string, user, password string) (*clientv3.Client, error) {
	return clientv3.New(clientv3.Config{Endpoints: eps, Username: user, Password: password,
		DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
}

func run(out io.Writer, eps []string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// 1. While auth is off, anyone may set it up.
	admin, err := connect(eps, "", "")
	if err != nil {
		return err
	}
	defer admin.Close()
	steps := []struct {
		what string
		do   func() error
	}{
		{"user add root", func() error { _, err := admin.UserAdd(ctx, "root", "root-secret"); return err }},
		{"user grant-role root root", func() error { _, err := admin.UserGrantRole(ctx, "root", "root"); return err }},
		{"role add app", func() error { _, err := admin.RoleAdd(ctx, "app"); return err }},
		{"role grant-permission app readwrite --prefix app/", func() error {
			_, err := admin.RoleGrantPermission(ctx, "app", "app/", clientv3.GetPrefixRangeEnd("app/"), clientv3.PermissionType(clientv3.PermReadWrite))
			return err
		}},
		{"user add alice", func() error { _, err := admin.UserAdd(ctx, "alice", "alice-secret"); return err }},
		{"user grant-role alice app", func() error { _, err := admin.UserGrantRole(ctx, "alice", "app"); return err }},
		{"auth enable", func() error { _, err := admin.AuthEnable(ctx); return err }},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			return fmt.Errorf("%s: %w", s.what, err)
		}
		fmt.Fprintln(out, "ok:", s.what)
	}

	// 2. Without credentials nothing is served any more.
	if _, err := admin.Get(ctx, "app/config"); !errors.Is(err, rpctypes.ErrUserEmpty) {
		return fmt.Errorf("a request without a user: want %v, got %v", rpctypes.ErrUserEmpty, err)
	}
	fmt.Fprintln(out, "refused without a user:", rpctypes.ErrUserEmpty)

	// 3. alice reads and writes app/ and nothing else.
	alice, err := connect(eps, "alice", "alice-secret")
	if err != nil {
		return err
	}
	defer alice.Close()
	if _, err := alice.Put(ctx, "app/config", "v1"); err != nil {
		return fmt.Errorf("alice writes app/config: %w", err)
	}
	fmt.Fprintln(out, "ok: alice put app/config")
	if _, err := alice.Put(ctx, "other", "x"); !errors.Is(err, rpctypes.ErrPermissionDenied) {
		return fmt.Errorf("alice writes other: want %v, got %v", rpctypes.ErrPermissionDenied, err)
	}
	fmt.Fprintln(out, "refused: alice put other:", rpctypes.ErrPermissionDenied)
	if _, err := connect(eps, "alice", "wrong"); !errors.Is(err, rpctypes.ErrAuthFailed) {
		return fmt.Errorf("a wrong password: want %v, got %v", rpctypes.ErrAuthFailed, err)
	}
	fmt.Fprintln(out, "refused: a wrong password:", rpctypes.ErrAuthFailed)

	// 4. root may do everything, including turning auth off.
	root, err := connect(eps, "root", "root-secret")
	if err != nil {
		return err
	}
	defer root.Close()
	resp, err := root.Get(ctx, "app/config")
	if err != nil || len(resp.Kvs) != 1 {
		return fmt.Errorf("root reads app/config: %v", err)
	}
	fmt.Fprintf(out, "ok: root get app/config = %s\n", resp.Kvs[0].Value)
	if _, err := root.AuthDisable(ctx); err != nil {
		return fmt.Errorf("auth disable: %w", err)
	}
	fmt.Fprintln(out, "ok: auth disable")
	return nil
}
