-- Report deliveries: one row per (report, period, recipient). The primary key is what makes a
-- re-run send nothing twice; the row is written as 'sending' (and committed) before the SMTP
-- server sees the message and as 'sent' right after it accepted it (touchpoint.delivery.deliver).
create schema if not exists reporting;

create table if not exists reporting.deliveries (
    report            text not null,
    period            text not null,             -- e.g. '2026-W47'
    recipient         text not null,             -- the address
    content_hash      text,                      -- sha256 of what the recipient reads; null when migrated
    status            text not null check (status in ('sending', 'sent', 'failed')),
    message_id        text not null,             -- chosen at the first attempt, reused by every retry
    subject           text,
    attempts          int not null default 0,
    last_error        text,                      -- 'transient: ...' (retried next run) or 'permanent: ...'
    first_attempt_at  timestamptz,
    last_attempt_at   timestamptz,
    sent_at           timestamptz,
    primary key (report, period, recipient)
);

-- Before reporting.deliveries, sends were recorded in report.send_log (keyed by week_start):
-- carry them over once, so an upgrade resends nothing, then drop the old table.
do $$
begin
    if to_regclass('report.send_log') is not null then
        insert into reporting.deliveries
            (report, period, recipient, status, message_id, subject, attempts,
             first_attempt_at, last_attempt_at, sent_at)
        select report_name, to_char(week_start, 'IYYY-"W"IW'), recipient, 'sent', message_id, subject, 1,
               sent_at, sent_at, sent_at
        from report.send_log
        on conflict (report, period, recipient) do nothing;
        drop table report.send_log;
        begin
            drop schema report;
        exception when dependent_objects_still_exist then
            raise notice 'schema report kept: it holds objects other than the old send_log';
        end;
    end if;
end
$$;
