//! Integration tests of certkeeper-core against files made by other tools.

mod corpus;
mod damage;
mod limbo;
mod mutations;
mod null_password;
