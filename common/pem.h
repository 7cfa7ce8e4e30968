/*
 * Certificate parsing and description on OpenSSL 3: PEM and DER input,
 * chain ordering and link checks, and a plain description of a certificate.
 * Private keys are not handled here (agent/keys.c owns them).
 * All functions return 0 or a negative err_code with words in *cause.
 */
#ifndef CERTAGENT_PEM_H
#define CERTAGENT_PEM_H

#include <openssl/x509.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Reads every certificate in data: PEM (one or more CERTIFICATE blocks, other
 * blocks such as private keys are skipped) or DER (exactly one certificate).
 * No certificate at all is -E_BAD_INPUT, with a cause that says what the input
 * looks like instead ("looks like a PKCS#12 file: use --pfx", "PEM block
 * 'X' is not a certificate", "truncated PEM", "not PEM or DER").
 * `what` names the input in messages (e.g. "certificate file").
 */
int pem_read_certs(const unsigned char *data, size_t len, const char *what, STACK_OF(X509) * *out,
                   char **cause);

/*
 * Orders `chain` (any order, may be empty or NULL) into the path leaf ->
 * issuer -> ... as far as the given certificates reach.  Every given
 * certificate must be used; each link is checked by issuer name and by
 * signature.  Duplicates of the leaf or of each other are dropped.  On
 * failure -E_BAD_INPUT names the subjects involved, e.g. "chain does not
 * link: 'CN=Other CA' did not issue 'CN=www.example.com'".
 * *ordered receives new references (leaf not included).
 */
int pem_order_chain(X509 *leaf, STACK_OF(X509) * chain, STACK_OF(X509) * *ordered, char **cause);

/*
 * What an imported leaf must be: a positive serial number, at most 1000
 * subjectAltName entries, and a key that is not broken: RSA of 1024 bits or
 * more (under 2048 the import warns), EC on P-256, P-384 or P-521 (named, not
 * explicit parameters), Ed25519 or Ed448.  -E_BAD_INPUT names the problem ("the certificate's key
 * is RSA 1024: ...").
 */
int pem_check_import(X509 *leaf, char **cause);

/* PEM text of certs (concatenated CERTIFICATE blocks), heap, NUL-terminated. */
int pem_write_certs(STACK_OF(X509) * certs, char **out, size_t *len, char **cause);
/* PEM text of one certificate. */
int pem_write_cert(X509 *cert, char **out, size_t *len, char **cause);

struct cert_info {
    char *subject;     /* one-line RFC 2253 form, "CN=www.example.com,O=Example" */
    char *common_name; /* CN or "" */
    char *issuer;      /* same form as subject */
    char *serial;      /* upper-case hex, no separators */
    char *fingerprint; /* SHA-256, upper-case hex pairs joined by ':' */
    char **dns;        /* subjectAltName dNSName entries */
    size_t ndns;
    char **ips; /* subjectAltName iPAddress entries, printed */
    size_t nips;
    int64_t not_before; /* Unix seconds */
    int64_t not_after;
    char *key_type;  /* "EC", "RSA", "Ed25519", "Ed448", other names as OpenSSL has them */
    int key_bits;    /* 256, 2048, ... */
    char *key_curve; /* "P-256", "P-384" or "" */
    char *sig_alg;   /* "ecdsa-with-SHA256", ... */
    int self_signed; /* issuer == subject and the signature verifies with its own key */
    int is_ca;       /* basicConstraints CA:TRUE */
};

/* Fills info from cert; release with pem_cert_info_free. */
int pem_cert_info(X509 *cert, struct cert_info *info, char **cause);

/*
 * The certificate's ACME Renewal Information CertID (RFC 9773 section 4.1):
 * base64url(authorityKeyIdentifier keyIdentifier) "." base64url(the DER
 * INTEGER content octets of the serial), without padding.  -E_BAD_INPUT
 * when the certificate has no AKI keyIdentifier.  Heap string.
 */
int pem_cert_ari_id(X509 *cert, char **out, char **cause);
void pem_cert_info_free(struct cert_info *info);

/*
 * The reason of the last OpenSSL error in words (into buf), clearing the
 * error queue.  "unknown error" when the queue is empty.
 */
const char *pem_ssl_reason(char *buf, size_t len);
/* Does data hold the text needle? (binary-safe) */
int pem_has_text(const unsigned char *data, size_t len, const char *needle);

/* Validity at time now: 0 valid, -1 not yet valid, 1 expired. */
int pem_cert_validity(X509 *cert, int64_t now);

/*
 * Days left until not_after, rounded down, from now (negative once expired).
 */
int64_t pem_days_left(int64_t not_after, int64_t now);

#endif
