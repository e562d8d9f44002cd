//! Codegen REST API simulator.
