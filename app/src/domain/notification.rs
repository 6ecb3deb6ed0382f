//! The events a person is told about (SPEC §8). Each kind is one line on the e-mail
//! preferences page; the stored value is `as_str`.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    RequestApproved,
    RequestRejected,
    ListingSold,
    ListingExpiring,
    ListingEnded,
    ListingSuspended,
    PaymentReceived,
    PaymentFailed,
    NewBid,
    Outbid,
    AuctionWon,
    AuctionLost,
    WithdrawalDecided,
    DisputeOpened,
    DisputeResolved,
    OrderUpdated,
}

impl Kind {
    pub const ALL: [Kind; 16] = [
        Kind::RequestApproved,
        Kind::RequestRejected,
        Kind::ListingSold,
        Kind::ListingExpiring,
        Kind::ListingEnded,
        Kind::ListingSuspended,
        Kind::PaymentReceived,
        Kind::PaymentFailed,
        Kind::NewBid,
        Kind::Outbid,
        Kind::AuctionWon,
        Kind::AuctionLost,
        Kind::WithdrawalDecided,
        Kind::DisputeOpened,
        Kind::DisputeResolved,
        Kind::OrderUpdated,
    ];

    /// The value stored in the database and used in forms.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::RequestApproved => "request_approved",
            Kind::RequestRejected => "request_rejected",
            Kind::ListingSold => "listing_sold",
            Kind::ListingExpiring => "listing_expiring",
            Kind::ListingEnded => "listing_ended",
            Kind::ListingSuspended => "listing_suspended",
            Kind::PaymentReceived => "payment_received",
            Kind::PaymentFailed => "payment_failed",
            Kind::NewBid => "new_bid",
            Kind::Outbid => "outbid",
            Kind::AuctionWon => "auction_won",
            Kind::AuctionLost => "auction_lost",
            Kind::WithdrawalDecided => "withdrawal_decided",
            Kind::DisputeOpened => "dispute_opened",
            Kind::DisputeResolved => "dispute_resolved",
            Kind::OrderUpdated => "order_updated",
        }
    }

    pub fn parse(s: &str) -> Result<Kind, String> {
        Kind::ALL
            .into_iter()
            .find(|k| k.as_str() == s.trim())
            .ok_or_else(|| format!("“{s}” is not a notification type."))
    }

    /// The event, as the preferences page names it.
    pub fn label(self) -> &'static str {
        match self {
            Kind::RequestApproved => "Issuance request approved",
            Kind::RequestRejected => "Issuance request rejected",
            Kind::ListingSold => "Your credits sold",
            Kind::ListingExpiring => "Listing about to expire",
            Kind::ListingEnded => "Listing or auction ended unsold",
            Kind::ListingSuspended => "Listing suspended or reinstated",
            Kind::PaymentReceived => "Payment received",
            Kind::PaymentFailed => "Payment failed or expired",
            Kind::NewBid => "New bid on your auction",
            Kind::Outbid => "You were outbid",
            Kind::AuctionWon => "Auction won",
            Kind::AuctionLost => "Auction lost",
            Kind::WithdrawalDecided => "Withdrawal paid or rejected",
            Kind::DisputeOpened => "Dispute opened",
            Kind::DisputeResolved => "Dispute resolved",
            Kind::OrderUpdated => "Order confirmed or cancelled by an administrator",
        }
    }

    /// Whether people of `role` can receive it (the preferences page lists only these).
    pub fn concerns(self, role: crate::domain::user::Role) -> bool {
        use crate::domain::user::Role;
        match self {
            Kind::RequestApproved
            | Kind::RequestRejected
            | Kind::ListingSold
            | Kind::ListingExpiring
            | Kind::ListingEnded
            | Kind::ListingSuspended
            | Kind::NewBid => role == Role::EvOwner,
            Kind::Outbid | Kind::AuctionWon | Kind::AuctionLost => {
                matches!(role, Role::Buyer | Role::EvOwner)
            }
            Kind::PaymentReceived | Kind::PaymentFailed => {
                matches!(role, Role::Buyer | Role::EvOwner)
            }
            Kind::WithdrawalDecided => matches!(role, Role::EvOwner | Role::Buyer),
            Kind::DisputeOpened | Kind::DisputeResolved => role != Role::Cva,
            Kind::OrderUpdated => matches!(role, Role::Buyer | Role::EvOwner),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips_and_is_named_once() {
        let mut seen = std::collections::HashSet::new();
        for k in Kind::ALL {
            assert_eq!(Kind::parse(k.as_str()), Ok(k));
            assert!(seen.insert(k.as_str()));
            assert!(!k.label().is_empty());
        }
        assert!(Kind::parse("bogus").is_err());
    }
}
