// Package awskms keeps keys in AWS KMS (asymmetric SIGN_VERIFY keys, RSA
// or NIST curves). Keys are created in KMS and every signature is one Sign
// call with MessageType DIGEST; the private key never leaves KMS. Keys are
// named by alias, key ID or ARN:
//
//	awskms:///alias/helseid?region=eu-north-1
//	awskms:///arn:aws:kms:eu-north-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab
//
// Credentials come from the AWS SDK's default chain (environment, shared
// config and SSO, web identity for EKS, container and EC2 instance
// metadata). The SDK is set up only when an awskms: key is used. A
// loopback endpoint (keystore.Options.Endpoint) is spoken to over plain
// http with dummy credentials, for the fake in package fakeawskms and for
// local-kms.
package awskms
