-- A survivor who opted out of the federation's statistics is not counted
-- (agency_node::statistics). Set at intake or in the portal; 1 = opted out.
-- Keep in step with ../sqlite/0012_statistics_opt_out.sql.
ALTER TABLE survivors ADD COLUMN statistics_opt_out BIGINT NOT NULL DEFAULT 0;
