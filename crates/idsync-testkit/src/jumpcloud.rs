//! A stateful fake JumpCloud API server (being written).
