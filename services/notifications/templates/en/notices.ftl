# Notices in English. Each notice has a -subject and a -body; the variables are filled in by
# the notifications service from the event and the directory, after control characters are
# removed and long values cut (see docs/notifications.md). Plain text: nothing here is HTML.

relationship-request-received-subject = { $provider_name } asks to act for { $client_name }
relationship-request-received-body =
    Hello { $recipient_name },

    { $provider_name } (business number { $provider }) sent { $client_name } (business number { $client }) a request to act on its behalf as a service provider.

    Sign in to review it: approve it, or reject it with a reason.

    You receive this message because you manage the business accounts of { $client_name }. You can turn these e-mails off in your profile.
