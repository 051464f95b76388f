-- The report's send log: one row per (report, week, recipient); the primary key is what
-- makes a re-run send nothing twice.
create schema if not exists report;

create table if not exists report.send_log (
    report_name   text not null,
    week_start    date not null,
    recipient     text not null,
    subject       text not null,
    message_id    text not null,
    sent_at       timestamptz not null default now(),
    primary key (report_name, week_start, recipient)
);
