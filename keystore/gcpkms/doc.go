// Package gcpkms keeps keys in Google Cloud KMS (software or HSM protection
// level). Keys are created in KMS and every signature is one asymmetricSign
// call whose CRC32C integrity fields are all checked; the private key never
// leaves KMS. Keys are named by version:
//
//	gcpkms://projects/P/locations/europe-north1/keyRings/R/cryptoKeys/K/cryptoKeyVersions/1
//
// The backend calls the Cloud KMS REST API v1
// (https://cloudkms.googleapis.com/v1/…) with net/http and encoding/json, so
// the binary links no gRPC or protobuf. Credentials are Google's
// Application Default Credentials (GOOGLE_APPLICATION_CREDENTIALS, gcloud's,
// or the metadata server: workload identity), asked for the cloudkms scope
// when a gcpkms key is first used. keystore.Options.Endpoint (HOST[:PORT])
// replaces Google's endpoint: off loopback it is called over HTTPS with
// those credentials; on loopback over plain HTTP without credentials, for
// the fake in package fakekms.
package gcpkms
