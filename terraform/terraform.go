// Package terraform ships sparkplane's Terraform modules inside the binary, so that the AWS
// provider and `sparkplane export terraform` write exactly the module in this repository.
package terraform

import (
	"embed"
	"io/fs"
	"os"
	"path/filepath"
)

//go:embed all:aws
var modules embed.FS

// AWS is the AWS module (terraform/aws): its .tf files, templates, README and examples.
func AWS() fs.FS {
	sub, err := fs.Sub(modules, "aws")
	if err != nil {
		panic(err) // the embed above guarantees the directory
	}
	return sub
}

// Write copies a module into dir, replacing files of the same names.
func Write(module fs.FS, dir string) error {
	return fs.WalkDir(module, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		target := filepath.Join(dir, filepath.FromSlash(path))
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := fs.ReadFile(module, path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
}
