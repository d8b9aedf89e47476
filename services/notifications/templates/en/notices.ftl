# Notices in English. Each notice has a -subject and a -body; the variables are filled in by
# the notifications service from the event and the directory, after control characters are
# removed and long values cut (see docs/notifications.md). Plain text: nothing here is HTML.

relationship-request-received-subject = { $provider_name } asks to act for { $client_name }
relationship-request-received-body =
    Hello { $recipient_name },

    { $provider_name } (business number { $provider }) sent { $client_name } (business number { $client }) a request to act on its behalf as a service provider.

    Sign in to review it: approve it, or reject it with a reason.

    { notice-footer }

# Shared by every notice: why the recipient gets it. $recipient_business is the business the
# notice concerns them through.
notice-footer = You receive this message because of your role with { $recipient_business }. You can turn these e-mails off in your profile, all of them or one kind at a time.

relationship-request-approved-subject = { $client_name } approved the request of { $provider_name }
relationship-request-approved-body =
    Hello { $recipient_name },

    { $client_name } (business number { $client }) approved the request of { $provider_name } (business number { $provider }) to act on its behalf. The relationship has begun.

    { notice-footer }

relationship-request-rejected-subject = { $client_name } rejected the request of { $provider_name }
relationship-request-rejected-body =
    Hello { $recipient_name },

    { $client_name } (business number { $client }) rejected the request of { $provider_name } (business number { $provider }) to act on its behalf.

    Reason given: { $reason }

    { notice-footer }

relationship-ended-subject = The relationship between { $provider_name } and { $client_name } has ended
relationship-ended-body =
    Hello { $recipient_name },

    { $ended_by_name } ended, for { $ended_by_business } ({ $ended_by_side ->
        [provider] the service provider
       *[client] the client
    }), the relationship between { $provider_name } (business number { $provider }) and { $client_name } (business number { $client }).

    { $has_note ->
        [yes] Their note: { $note }
       *[other] They left no note.
    }

    { notice-footer }

relationship-expired-subject = The relationship between { $provider_name } and { $client_name } has expired
relationship-expired-body =
    Hello { $recipient_name },

    The relationship between { $provider_name } (business number { $provider }) and { $client_name } (business number { $client }) reached its expiry date and has ended. The client can approve a new request to continue.

    { notice-footer }

relationship-expiry-reminder-subject = The relationship between { $provider_name } and { $client_name } expires { $days ->
        [1] tomorrow
       *[other] in { $days } days
    }
relationship-expiry-reminder-body =
    Hello { $recipient_name },

    The relationship between { $provider_name } (business number { $provider }) and { $client_name } (business number { $client }) expires on { $expire_date }, { $days ->
        [1] tomorrow
       *[other] in { $days } days
    }. To continue, the provider can send a new request before then.

    { notice-footer }

employee-request-received-subject = { $requester_name } asks to join { $business_name }
employee-request-received-body =
    Hello { $recipient_name },

    { $requester_name } asks to join { $business_name } (business number { $business }) as an employee.

    { $has_note ->
        [yes] Their note: { $note }
       *[other] They left no note.
    }

    Sign in to review the request: approve it with the roles to grant, or reject it with a reason.

    { notice-footer }

employee-request-approved-subject = You have joined { $business_name }
employee-request-approved-body =
    Hello { $recipient_name },

    { $business_name } (business number { $business }) approved your request to join it as an employee. Sign in to see the roles you were granted.

    { notice-footer }

employee-request-rejected-subject = { $business_name } rejected your request to join it
employee-request-rejected-body =
    Hello { $recipient_name },

    { $business_name } (business number { $business }) rejected your request to join it as an employee.

    Reason given: { $reason }

    { notice-footer }

credential-expiry-reminder-subject = The machine credential { $credential_name } of { $business_name } expires { $days ->
        [1] tomorrow
       *[other] in { $days } days
    }
credential-expiry-reminder-body =
    Hello { $recipient_name },

    The machine credential { $credential_name } of { $business_name } (business number { $business }) expires on { $expire_date }, { $days ->
        [1] tomorrow
       *[other] in { $days } days
    }. After that the systems using it can no longer sign in.

    Sign in to create a new credential and give its secret to those systems before then.

    { notice-footer }
