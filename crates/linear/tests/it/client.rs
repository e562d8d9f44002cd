//! Client tests: placeholder removed below
