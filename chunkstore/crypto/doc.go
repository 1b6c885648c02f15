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
// string; the associated data is authenticated but not stored. The two
// encrypting sealers, "xaes-256-gcm" (the default) and "xchacha20-poly1305",
// write the same layout:
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
// XAES-256-GCM (https://c2sp.org/XAES-256-GCM) is AES-256-GCM under a
// message key derived from the master key and the nonce's first 12 bytes (the
// NIST SP 800-108r1 counter KDF over AES-256-CMAC: two AES blocks per
// message); the nonce's last 12 bytes are the GCM nonce. Different first
// halves give different message keys (each key half is AES of a different
// block, and AES is a permutation), so a GCM key and nonce pair repeats only
// if all 24 random bytes do: the spec puts 2^80 messages at a 2^-32 risk. It
// is the default because on CPUs with AES instructions it seals and opens
// large blobs about 1.4 times as fast as XChaCha20-Poly1305 (decryption was a
// third of a cold read's CPU time through the mount). Its cost per message,
// deriving the key and setting up AES-GCM (about 0.4 µs and 1.3 KB of
// garbage), makes it even with XChaCha20-Poly1305 at 4 KiB and slower below
// (0.8 µs instead of 0.45 for 256 bytes).
//
// XChaCha20-Poly1305 stays fully supported: repositories record their
// sealer and keep it, and it is the better choice for new repositories on
// CPUs without AES instructions, where AES is slow and GCM hard to make
// constant-time.
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
