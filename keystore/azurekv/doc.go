// Package azurekv keeps keys in Azure Key Vault (software or HSM keys) and
// Azure Key Vault Managed HSM. Keys are created in the vault, non-exportable
// and allowed only to sign and verify; every signature is one Sign call and
// the private key never leaves the vault. Keys are named by vault host, key
// name and optionally version:
//
//	azurekv://myvault.vault.azure.net/keys/helseid
//	azurekv://myhsm.managedhsm.azure.net/keys/helseid/0123456789abcdef0123456789abcdef
//
// Credentials come from azidentity's DefaultAzureCredential (environment,
// workload identity, managed identity, Azure CLI …), built on first use. A
// loopback https endpoint (keystore.Options.Endpoint) stands in for the
// vault, with a fixed test token instead of real credentials, for the
// in-process fake in package fakeazkv.
package azurekv
