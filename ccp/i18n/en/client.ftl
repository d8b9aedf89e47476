# The ccp client's human output, in English (the reference catalogue).
# Every message here has a French twin in ../fr/client.ftl (a unit test checks both ways).
# Values ({ $name }) are inserted as plain text.

## Sessions

signed-in-as = signed in as { $principal } via { $gateway }
signed-out = signed out { $principal }
not-signed-in = not signed in
acting-for-business = acting for business { $business }
no-profile-yet = no profile yet: create it with `ccp profile create --legal-name "…" --email …`
profile-is = profile { $profile }
profile-of = profile { $profile } ({ $legal_name }, { $email })
access-token-valid-until = access token valid until { $time }

## Profile and credentials

profile-created = profile created
profile-updated = profile updated
no-notice-choices = none (every kind follows email notifications)
keep-the-secret = keep the secret now: it is never shown again
credential-revoked = revoked { $name } ({ $state })

## Businesses, employees, groups

terms-heading = Terms & Conditions, version { $version }
challenge-heading = business { $business }; terms version { $version }
accept-terms = Do you accept the Terms & Conditions version { $version }? [y/N]
registered-you-are-bam = registered; you are its Business Account Manager
requested = requested: { $name } (expires { $time })
member-removed-no-role = { $member } has no role left and was removed
approved = approved
ended = ended
removed = removed { $name }
deleted = deleted { $name }
assigned = assigned { $assignee } to { $target } as { $role } ({ $name })

## Decisions

allow-because = ALLOW ({ $reason })
deny = DENY
deny-because = DENY ({ $reason })
role-facts = role facts:
relationship-facts = relationship facts:
assignment-facts = assignment facts:

## Lists, files and errors

none = (none)
next-page = next page: --page-token { $token }
more-items-remain = more items remain after { $count }: read them all with --all, or on with --page-token { $token }
wrote-records = wrote { $count } records to { $path }
error-line = error: { $message } ({ $code })

## Table headings (looked up by their English text)

heading-action = ACTION
heading-actor = ACTOR
heading-assignment = ASSIGNMENT
heading-business = BUSINESS
heading-client = CLIENT
heading-client-id = CLIENT ID
heading-clients = CLIENTS
heading-display-name = DISPLAY NAME
heading-email = EMAIL
heading-expires = EXPIRES
heading-format = FORMAT
heading-group = GROUP
heading-legal-name = LEGAL NAME
heading-level = LEVEL
heading-linked = LINKED
heading-member = MEMBER
heading-members = MEMBERS
heading-name = NAME
heading-note = NOTE
heading-program-account = PROGRAM ACCOUNT
heading-programs = PROGRAMS
heading-provider = PROVIDER
heading-question = QUESTION
heading-question-id = QUESTION ID
heading-reason = REASON
heading-requester = REQUESTER
heading-resource = RESOURCE
heading-role = ROLE
heading-roles = ROLES
heading-service = SERVICE
heading-state = STATE
heading-target = TARGET
heading-time = TIME
heading-via-provider = VIA PROVIDER
heading-your-roles = YOUR ROLES

## Field labels (looked up by their English text)

label-address = address
label-business = business
label-business-managers = business managers
label-client = client
label-client-id = client id
label-client-secret = client secret
label-clients = clients
label-credential = credential
label-decision = decision
label-deleted = deleted
label-direct-roles = direct roles
label-effective-roles = effective roles
label-email = email
label-email-notifications = email notifications
label-end-note = end note
label-end-reason = end reason
label-ended = ended
label-ended-by = ended by
label-expires = expires
label-explanation = explanation
label-group = group
label-groups = groups
label-joined = joined
label-language = language
label-legal-name = legal name
label-level = level
label-member = member
label-members = members
label-name = name
label-notice-choices = notice choices
label-phone = phone
label-principal = principal
label-programs = programs
label-provider = provider
label-reason = reason
label-registered = registered
label-relationship = relationship
label-roles = roles
label-started = started
label-state = state
label-terms-accepted = terms accepted
label-updated = updated
label-visibility = visibility

## Enum values (looked up by their English short name)

value-active = active
value-amount = amount
value-approved = approved
value-bam = bam
value-business = business
value-date = date
value-editor = editor
value-en = en
value-ended = ended
value-ended-by-client = ended by client
value-ended-by-provider = ended by provider
value-expired = expired
value-expired-user-own-submission = expired user own submission
value-fr = fr
value-no-relationship = no relationship
value-no-role = no role
value-not-a-member = not a member
value-not-assigned = not assigned
value-own-role = own role
value-pam = pam
value-pending = pending
value-program = program
value-program-not-covered = program not covered
value-provider-relationship = provider relationship
value-reader = reader
value-rejected = rejected
value-relationship-ended = relationship ended
value-revoked = revoked
value-role-too-low = role too low
value-self = self
value-text = text
value-visibility = visibility
value-withdrawn = withdrawn
