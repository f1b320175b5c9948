-- An approved (or resumed) action that policy refuses when re-checked right
-- before the provider call ends `refused`, with the rule's code and message.
ALTER TABLE actions DROP CONSTRAINT actions_status_check;
ALTER TABLE actions ADD CONSTRAINT actions_status_check
    CHECK (status IN ('pending_approval', 'executing', 'succeeded', 'failed', 'rejected', 'refused'));
