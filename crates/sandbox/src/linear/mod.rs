//! Linear GraphQL + Agent API simulator.
