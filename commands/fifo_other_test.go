//go:build !unix

package commands

import "errors"

func mkfifo(string) error { return errors.New("this system has no mkfifo") }
