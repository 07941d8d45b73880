-- Least privilege: the services connect as a login role that is a member of doseflow_service,
-- which may read and write rows but not change the schema. Migrations run as the owner
-- (`doseflow db migrate` with the owner's URL). Creating the role needs CREATEROLE; an owner
-- without it gets a notice, and the role can be made by an administrator with this same block.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'doseflow_service') THEN
        IF (SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user) THEN
            CREATE ROLE doseflow_service NOLOGIN;
        ELSE
            RAISE NOTICE 'role doseflow_service not created: % may not create roles', current_user;
            RETURN;
        END IF;
    END IF;
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO doseflow_service', current_schema());
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %I TO doseflow_service',
                   current_schema());
    EXECUTE format('GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA %I TO doseflow_service', current_schema());
    EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES'
                   ' TO doseflow_service', current_schema());
    EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT USAGE, SELECT ON SEQUENCES TO doseflow_service',
                   current_schema());
END
$$;
