// Package crypto holds the repository's secrets and the primitives that use
// them: the master key, keyed blob IDs, the sealers (authenticated encryption)
// and the password-wrapped key files. It works on byte slices only.
//
// # Master key
//
// A repository has one master [Key] of two independent 256-bit halves:
//
//	Encrypt  key of the repository's sealer (blobs, packs, snapshots, config)
//	ID       key of the keyed BLAKE3-256 that names blobs, so that whoever holds
//	         the storage cannot confirm a guess of a blob's contents by hashing
//
// # Sealed form
//
// A [Sealer] turns a plaintext and its associated data into one opaque byte
// string; the associated data is authenticated but not stored. The
// "xchacha20-poly1305" sealer (the default) writes
//
//	+----------------+---------------------------+-----------+
//	| nonce 24 bytes | ciphertext len(plaintext) | tag 16    |
//	+----------------+---------------------------+-----------+
//
// The nonce is random for every message. With 192 random bits the chance of a
// repeat stays negligible long after 2^32 messages, the point where 96-bit
// random nonces (AES-GCM, ChaCha20-Poly1305) stop being safe, so no counter
// has to survive crashes or be shared between hosts.
//
// The "none" sealer stores the plaintext as is: no confidentiality and no
// integrity; the associated data is ignored. It exists for `init
// --encryption none` on trusted local disks.
//
// # Key files
//
// Each password of a repository has one key file: the master key sealed with
// XChaCha20-Poly1305 under a key derived from the password with argon2id. A
// key file is JSON so that an administrator can inspect it:
//
//	{
//	  "version": 1,
//	  "created": "2025-01-02T03:04:05.123456789Z",
//	  "host": "backup01",
//	  "user": "root",
//	  "kdf": "argon2id",
//	  "params": {"time": 4, "memory_kib": 32768, "threads": 2,
//	             "salt": "<base64, at least 16 bytes>"},
//	  "data": "<base64, 104 bytes: nonce 24 | sealed master key 64 | tag 16>"
//	}
//
// The sealed master key is Encrypt (32 bytes) followed by ID (32 bytes), with
// the associated data "hindsight key file v1". The other fields are not
// authenticated. Created, host and user are informational; changing the KDF
// parameters yields a different derived key, which then fails to open the
// data exactly as a wrong password does. Decoding bounds the argon2 cost
// (see [KDFParams.Validate]) so that a hostile key file cannot make a client
// allocate or compute without limit before the password is even checked.
package crypto
