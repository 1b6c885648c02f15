// Package codec turns plaintext into its stored form and back: compress
// (zstd, optional, only when it pays), then seal with the repository's
// [crypto.Sealer]. It works on byte slices only.
//
// # Blobs
//
// A blob's stored form carries no header: its compression and plaintext
// length live in the pack trailer and the index, which are authenticated
// themselves.
//
//	stored  = Seal(payload, ad)
//	ad      = type (1 byte) | blob ID (32 bytes) | compression (1 byte)
//	payload = plaintext               when compression is None (0)
//	        | one zstd frame          when compression is Zstd (1)
//
// A zstd frame must declare its content size (Frame_Content_Size), equal to
// the raw length; decoders reject frames without it.
//
// The associated data binds the ciphertext to the blob's ID and type, so
// storage cannot answer a request for one blob with another, well-formed,
// blob; and to its compression, so that metadata naming the wrong one fails
// to authenticate instead of yielding bytes of the right length but the
// wrong content. (The raw length needs no binding: a wrong one fails the
// length check.) A Zstd payload is always strictly shorter than the
// plaintext, since compression is dropped when it does not shrink the blob.
//
// # Other objects
//
// Pack trailers, index segments, snapshot records and the config are sealed
// with [Codec.Seal]. Their compression travels inside the sealed payload:
//
//	stored  = Seal(payload, ad = one of the AD* constants)
//	payload = compression (1 byte) | body
//	body    = plaintext | one zstd frame that declares its content size
//
// Every AD* string starts with "hindsight ", whose first byte (0x68) is no
// blob type, so an object's sealed form never opens as a blob, nor the
// other way round.
//
// # Limits
//
// No decoded object or blob exceeds [MaxRawLength] (64 MiB). A blob's raw
// length comes from the trailer or index, which callers must check against
// it before reading the stored bytes; Decode checks again and never lets zstd
// write more than the raw length. Decompression only runs on payloads that
// authenticated, so only a holder of the master key (or anyone, with the
// "none" sealer) can present one.
package codec
