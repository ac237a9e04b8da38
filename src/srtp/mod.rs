//! SRTP and SRTCP (RFC 3711, RFC 7714): key derivation, the four DTLS-SRTP profiles, replay
//! window, ROC estimation, in-place protect and unprotect.
