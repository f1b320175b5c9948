package main

import (
	"context"
	"errors"
	"io"
)

// customerCmd is `recourse customer erase ID --reason R`.
func customerCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return errors.New("usage: recourse customer erase ID --reason R")
}
