// Package gcpkms keeps keys in Google Cloud KMS (software or HSM protection
// level). Keys are created in KMS and every signature is one AsymmetricSign
// call whose CRC32C integrity fields are all checked; the private key never
// leaves KMS. Keys are named by version:
//
//	gcpkms://projects/P/locations/europe-north1/keyRings/R/cryptoKeys/K/cryptoKeyVersions/1
//
// Credentials are Google's Application Default Credentials. A loopback
// endpoint (keystore.Options.Endpoint) is dialled without TLS or
// credentials, for the in-process fake in package fakekms.
package gcpkms
