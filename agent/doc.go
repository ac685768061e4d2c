// Package agent is the local token agent behind `jwkctl serve`: it holds
// key URIs and client settings for several profiles and hands out cached
// access tokens (and DPoP proofs) over a Unix socket or loopback TCP, so
// applications never touch a key. Tokens are refreshed in the background
// before they expire, concurrent requests share one STS call, and a failed
// refresh keeps serving the still-valid token while it retries.
//
//	a := agent.New(agent.Config{}, []*agent.Profile{{Name: "helseid", Client: client}})
//	ln, _ := agent.Listen("unix:/run/jwkctl.sock", "")
//	http.Serve(ln, a.Handler(""))
package agent
