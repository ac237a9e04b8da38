//! Unit tests for the SDP parser and answer builder.
