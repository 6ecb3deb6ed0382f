//! The demo accounts `make run` seeds (their passwords are in the README and, in development
//! mode only, on the login page).

use crate::domain::user::Role;

pub struct DemoAccount {
    pub role: Role,
    pub email: &'static str,
    pub password: &'static str,
    pub full_name: &'static str,
    pub phone: &'static str,
}

pub const ACCOUNTS: &[DemoAccount] = &[
    DemoAccount {
        role: Role::EvOwner,
        email: "owner@evcx.demo",
        password: "green-miles-2026",
        full_name: "Nguyễn Văn An",
        phone: "+84901234567",
    },
    DemoAccount {
        role: Role::Buyer,
        email: "buyer@evcx.demo",
        password: "offset-today-2026",
        full_name: "Green Logistics JSC",
        phone: "+84281234567",
    },
    DemoAccount {
        role: Role::Cva,
        email: "cva@evcx.demo",
        password: "verify-carefully-2026",
        full_name: "Trần Thị Linh (CVA)",
        phone: "+84912345678",
    },
    DemoAccount {
        role: Role::Admin,
        email: "admin@evcx.demo",
        password: "run-the-platform-2026",
        full_name: "Platform Admin",
        phone: "+84987654321",
    },
];
