//! Screens for visitors: sign-in, sign-up, password reset.

pub mod login;
pub mod password_reset;
pub mod signup;
pub mod verify;
