/* OpenSSL's libcrypto (Debian libssl-dev): SHA-256 through EVP, which uses the CPU's SHA
   extensions where it has them. */
#include <openssl/evp.h>
