//! End to end: the Landlock layer through nucleus-run.

mod common;
