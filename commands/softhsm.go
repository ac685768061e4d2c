package commands

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/urfave/cli/v2"
)

const softhsmModule = "/usr/lib/softhsm/libsofthsm2.so"

func keysInitSoftHSMCommand() *cli.Command {
	return &cli.Command{
		Name:  "init-softhsm",
		Usage: "create a SoftHSM2 token for trying the HSM path on a developer machine",
		Description: "Makes DIR/softhsm2.conf and a token in DIR/tokens with random user and SO PINs stored\n" +
			"0600 in DIR, then prints the environment and a key URI to use. Needs softhsm2\n" +
			"(apt-get install softhsm2 opensc). SoftHSM2 is a software token for development, not an HSM.",
		Flags: []cli.Flag{
			&cli.PathFlag{Name: "dir", Usage: "`DIR` for the configuration, tokens and PIN files (default ~/.config/jwkctl/softhsm)", EnvVars: env("softhsm-dir")},
			&cli.StringFlag{Name: "label", Usage: "token `LABEL`", Value: "jwkctl", EnvVars: env("softhsm-label")},
			&cli.PathFlag{Name: "module", Usage: "SoftHSM2 PKCS#11 module `FILE`", Value: softhsmModule, EnvVars: env("pkcs11-module")},
		},
		Action: runInitSoftHSM,
	}
}

func runInitSoftHSM(c *cli.Context) error {
	util, err := exec.LookPath("softhsm2-util")
	if err != nil {
		return errors.New("softhsm2-util not found: install SoftHSM2 first (apt-get install softhsm2 opensc)")
	}
	dir := c.Path("dir")
	if dir == "" {
		cfg, err := os.UserConfigDir()
		if err != nil {
			return err
		}
		dir = filepath.Join(cfg, "jwkctl", "softhsm")
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return err
	}
	userPINFile, soPINFile := filepath.Join(dir, "user-pin"), filepath.Join(dir, "so-pin")
	if _, err := os.Stat(userPINFile); err == nil {
		return fmt.Errorf("%s already holds a SoftHSM2 setup (%s exists); use it, or pick another --dir", dir, userPINFile)
	}
	tokens := filepath.Join(dir, "tokens")
	if err := os.MkdirAll(tokens, 0o700); err != nil {
		return err
	}
	conf := filepath.Join(dir, "softhsm2.conf")
	confText := "directories.tokendir = " + tokens + "\nobjectstore.backend = file\nlog.level = ERROR\n"
	if err := writeNewFile(conf, []byte(confText), 0o600); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	userPIN, soPIN := randomPIN(), randomPIN()
	if err := writeNewFile(userPINFile, []byte(userPIN+"\n"), 0o600); err != nil {
		return err
	}
	if err := writeNewFile(soPINFile, []byte(soPIN+"\n"), 0o600); err != nil {
		return err
	}
	// softhsm2-util takes PINs only as arguments or at a prompt; this is a
	// development token, and the PINs are random and kept in 0600 files.
	cmd := exec.CommandContext(c.Context, util, "--init-token", "--free", "--label", c.String("label"), "--so-pin", soPIN, "--pin", userPIN)
	cmd.Env = append(os.Environ(), "SOFTHSM2_CONF="+conf)
	if out, err := cmd.CombinedOutput(); err != nil {
		os.Remove(userPINFile)
		os.Remove(soPINFile)
		return fmt.Errorf("softhsm2-util --init-token failed: %v: %s", err, oneLine(string(out)))
	}
	fmt.Fprintf(c.App.ErrWriter, "SoftHSM2 token %q created in %s (user PIN in %s, SO PIN in %s).\nSet this in your shell, then generate a key inside the token:\n\n",
		c.String("label"), tokens, userPINFile, soPINFile)
	uri := fmt.Sprintf("pkcs11:token=%s;object=helseid?module-path=%s&pin-source=file:%s", c.String("label"), c.Path("module"), userPINFile)
	fmt.Fprintf(c.App.Writer, "export SOFTHSM2_CONF=%s\n", conf)
	fmt.Fprintf(c.App.Writer, "jwkctl keys generate --key '%s'\n", uri)
	return nil
}

// writeNewFile creates path with data, failing if it exists.
func writeNewFile(path string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func randomPIN() string {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return hex.EncodeToString(b)
}
