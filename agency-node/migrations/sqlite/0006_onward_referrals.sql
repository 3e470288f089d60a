-- Onward referrals: an agency that accepted a referral refers the survivor
-- on; the new referral is kept at the owner node and names the referral it
-- continues, so the owner sees the chain.
-- Keep in step with ../postgres/0006_onward_referrals.sql.
ALTER TABLE referrals ADD COLUMN parent_id TEXT REFERENCES referrals (id);
