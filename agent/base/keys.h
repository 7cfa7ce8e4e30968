/*
 * The only code in the agent that touches private keys: generation, parsing,
 * matching, signing (self-signed certificates, later CSRs and JWS), and
 * serialisation for the store and for explicit exports.  Key material never
 * leaves through this API except as the serialised forms the store writes and
 * `export` returns; every buffer holding key material is wiped with
 * OPENSSL_cleanse before it is freed (keys_free_secret).
 * All functions are thread-safe on distinct objects and are called from the
 * libuv thread pool.  They return 0 or a negative err_code with *cause.
 */
#ifndef CERTAGENT_KEYS_H
#define CERTAGENT_KEYS_H

#include <openssl/types.h>
#include <openssl/x509.h>
#include <stddef.h>

enum key_type {
    KEY_EC256,
    KEY_EC384,
    KEY_RSA2048,
    KEY_RSA3072,
    KEY_RSA4096,
    KEY_ED25519,
};

struct key; /* opaque: an EVP_PKEY */

/* "ec256" -> KEY_EC256 ...; -E_BAD_INPUT for other names (cause lists valid ones). */
int keys_type_parse(const char *name, enum key_type *out, char **cause);
const char *keys_type_name(enum key_type type);

/* Generates a fresh key (CPU-heavy for RSA: call from the thread pool). */
int keys_generate(enum key_type type, struct key **out, char **cause);

/*
 * Parses a private key: PEM (PKCS#8, encrypted PKCS#8, traditional RSA/EC) or
 * DER (PKCS#8 or traditional).  password may be NULL.  Errors name the
 * problem: "private key is encrypted: give --password-file", "wrong password
 * for the private key", "no private key found in key file".
 */
int keys_parse(const unsigned char *data, size_t len, const char *password, struct key **out,
               char **cause);

/*
 * Parses a PKCS#12 (PFX) file.  password may be NULL (tries the empty
 * password).  On success *key (NULL if the file holds none), *leaf and *chain
 * (possibly empty, never NULL) are set; the leaf is the certificate that
 * matches the key when there is one.  Errors: "wrong password for the PFX
 * file", "not a PKCS#12 file", "PFX file holds no certificate".
 */
int keys_parse_pfx(const unsigned char *data, size_t len, const char *password, struct key **key,
                   X509 **leaf, STACK_OF(X509) * *chain, char **cause);

/*
 * Parses a CryptoAPI PRIVATEKEYBLOB (the Windows certificate store's export
 * of an RSA key).  Error: "the key from the Windows certificate store is not
 * a private key blob OpenSSL reads".
 */
int keys_parse_capi_blob(const unsigned char *data, size_t len, struct key **out, char **cause);

/* 0 when the key's public half is the certificate's; else -E_BAD_INPUT
 * "private key does not match the certificate". */
int keys_match_cert(const struct key *key, X509 *cert, char **cause);

/*
 * Makes a self-signed end-entity certificate: subject CN = cn, SANs dns[] and
 * ips[] (textual IPv4/IPv6, -E_BAD_INPUT when unparsable), random 128-bit
 * serial, validity now-5min .. now+days, basicConstraints CA:FALSE (critical),
 * keyUsage digitalSignature (+keyEncipherment for RSA), extendedKeyUsage
 * serverAuth, clientAuth, subjectKeyIdentifier; SHA-256 (none for Ed25519).
 */
int keys_selfsigned(const struct key *key, const char *cn, const char *const *dns, size_t ndns,
                    const char *const *ips, size_t nips, int days, X509 **out, char **cause);

/* Unencrypted PKCS#8 PEM of the key, for the store's privkey.pem.  Free with keys_free_secret. */
int keys_to_pem(const struct key *key, char **out, size_t *len, char **cause);

/*
 * PKCS#12 of key (may be NULL), cert and chain, encrypted with password
 * (AES-256-CBC, PBKDF2, SHA-256 MAC; empty password allowed), with
 * friendly_name.  Free *out with keys_free_secret.
 */
int keys_export_pfx(const struct key *key, X509 *cert, STACK_OF(X509) * chain,
                    const char *password, const char *friendly_name, unsigned char **out,
                    size_t *len, char **cause);

/*
 * ACME (RFC 7515, 7517, 7638, 8555).  keys_jws_alg: "ES256", "ES384", "RS256",
 * or NULL when the key cannot sign ACME requests (Ed25519).  keys_jwk: the
 * public JWK as canonical JSON (members sorted, no spaces: the thumbprint
 * input).  keys_jwk_thumbprint: base64url(SHA-256(JWK)).  keys_jws_sign: the
 * base64url JWS signature of input (raw r||s for ECDSA).  keys_csr: a
 * base64url DER PKCS#10 request for dns[] and ips[] (SAN only; CN = the
 * first DNS name when it fits; no EKU, no must-staple).  Heap results.
 */
const char *keys_jws_alg(const struct key *key);
int keys_jwk(const struct key *key, char **out, char **cause);
int keys_jwk_thumbprint(const struct key *key, char **out, char **cause);
int keys_jws_sign(const struct key *key, const char *input, size_t len, char **out, char **cause);
int keys_csr(const struct key *key, const char *const *dns, size_t ndns, const char *const *ips,
             size_t nips, char **out, char **cause);
/*
 * Would keys_csr accept dns[] and ips[] as subjectAltNames?  0 yes; -E_BAD_INPUT with a
 * cause naming the first entry that is not a DNS name (or "*." one) or an IP address.
 */
int keys_names_check(const char *const *dns, size_t ndns, const char *const *ips, size_t nips,
                     char **cause);

/* Describes the key: "EC P-256", "RSA 2048", "Ed25519". Static string or heap? -> heap. */
char *keys_describe(const struct key *key);

void keys_free(struct key *key);
/* Wipes len bytes of buf and frees it; NULL is a no-op. */
void keys_free_secret(void *buf, size_t len);

/*
 * tls-alpn-01 (RFC 8737, RFC 8738 for IP addresses): a fresh P-256 key and
 * the validation certificate for identifier (a DNS name or an IPv4/IPv6
 * literal): self-signed, valid from 5 minutes ago for 7 days, SAN = the
 * identifier alone (dNSName or iPAddress), and the critical
 * id-pe-acmeIdentifier extension (1.3.6.1.5.5.7.1.31) holding the DER
 * OCTET STRING of SHA-256(key_authorization).  Cheap (one P-256 key): may
 * run on the loop.  -E_BAD_INPUT for an identifier that is neither.
 */
int keys_alpn_cert(const char *identifier, const char *key_authorization, struct key **key,
                   X509 **cert, char **cause);

/*
 * Installs key and cert into ssl (a server connection, e.g. from a
 * ClientHello or SNI callback); ssl takes its own references, so the
 * caller keeps and frees key and cert.  -E_CRYPTO when they do not match.
 */
int keys_ssl_use(SSL *ssl, const struct key *key, X509 *cert, char **cause);

#endif
