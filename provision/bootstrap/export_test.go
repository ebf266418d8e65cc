package bootstrap

import "k8s.io/utils/clock"

// Test hooks for the external test package.

// SetMintedClock replaces the minted source's clock.
func SetMintedClock(m *MintedTokenSource, c clock.PassiveClock) { m.clock = c }

// SetSSMClock replaces the SSM source's clock.
func SetSSMClock(s *SSMTokenSource, c clock.PassiveClock) { s.clock = c }

// Paths the rendered script writes, for tests that run it in a sandbox.
var (
	UserDataDir       = userDataDir
	KubeletEnvFile    = kubeletEnvFile
	KubeletEnvDir     = kubeletEnvDir
	KubeletEnvFileRPM = kubeletEnvFileRPM
	KubeletEnvDirRPM  = kubeletEnvDirRPM
	JoinConfigFile    = joinConfigFile
)

// ShellQuote is the quoting Render uses, for strings it can quote.
func ShellQuote(s string) string {
	q, _ := quote(s)
	return q
}
