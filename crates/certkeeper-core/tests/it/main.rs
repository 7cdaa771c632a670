//! Integration tests of certkeeper-core against files made by other tools.

mod corpus;
mod mutations;
mod null_password;
