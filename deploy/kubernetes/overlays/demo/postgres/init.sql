-- The demo's databases: one for the gateway's audit log, and for each
-- node one for its records and log and one for its key store (kept apart
-- so that a backup of the records holds no key).
CREATE DATABASE gateway;
CREATE DATABASE shelter_north;
CREATE DATABASE shelter_north_keys;
CREATE DATABASE clinic_east;
CREATE DATABASE clinic_east_keys;
