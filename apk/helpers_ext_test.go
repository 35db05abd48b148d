package apk_test

import (
	"os"
	"path/filepath"
)

func readTestdata(rel string) ([]byte, error) {
	return os.ReadFile(filepath.Join("..", "testdata", "real", filepath.FromSlash(rel)))
}
