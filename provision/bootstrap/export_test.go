package bootstrap

import "time"

// Test hooks for the external test package.

// SetMintedClock replaces the minted source's clock.
func SetMintedClock(m *MintedTokenSource, now func() time.Time) { m.now = now }

// SetSSMClock replaces the SSM source's clock.
func SetSSMClock(s *SSMTokenSource, now func() time.Time) { s.now = now }

// Paths the rendered script writes, for tests that run it in a sandbox.
var (
	UserDataDir       = userDataDir
	KubeletEnvFile    = kubeletEnvFile
	KubeletEnvDir     = kubeletEnvDir
	KubeletEnvFileRPM = kubeletEnvFileRPM
	KubeletEnvDirRPM  = kubeletEnvDirRPM
)

// ShellQuote exposes shellQuote.
var ShellQuote = shellQuote
