// Package rotation rotates a HelseID client's key through NHN
// Selvbetjening's client-secret API, with the new key born in its backend
// (file, HSM or Cloud KMS). A rotation runs as explicit, journaled steps —
// plan, generate, self-test, upload, confirm (with a canary token),
// activate, retire — and a crash at any point resumes without a second
// key, a second upload or a lost key.
//
//	r := &rotation.Runner{Store: rotation.Store{Dir: dir}, ConfigPath: cfg, Profile: "helseid-prod"}
//	r.Plan(ctx, rotation.PlanRequest{})
//	r.Run(ctx, rotation.Activated, false)
package rotation
