//go:build !unix

package rotation

import "io/fs"

// checkJournalMode has no Unix mode bits or owner to check on this
// platform (Windows reports 0666 for any writable file).
func checkJournalMode(fs.FileInfo) (insecure string, readable bool) { return "", false }
