package swift

// SpoilToken replaces the connection's token with one the server never
// issued, as if it had expired, so the next request meets a 401.
func SpoilToken(b *Backend) string {
	b.conn.AuthToken = "AUTH_tk0123456789abcdef0123456789abcdef"
	return b.conn.AuthToken
}

// Token is the connection's current token.
func Token(b *Backend) string { return b.conn.AuthToken }
