# Les messages du client ccp, en français. Chaque message a son jumeau anglais dans
# ../en/client.ftl (un test unitaire le vérifie dans les deux sens).
# Les valeurs ({ $nom }) sont insérées telles quelles.

## Sessions

signed-in-as = connecté en tant que { $principal } par { $gateway }
signed-out = déconnecté : { $principal }
not-signed-in = non connecté
acting-for-business = agit pour l'entreprise { $business }
no-profile-yet = pas encore de profil : créez-le avec `ccp profile create --legal-name "…" --email …`
profile-is = profil { $profile }
profile-of = profil { $profile } ({ $legal_name }, { $email })
access-token-valid-until = jeton d'accès valide jusqu'au { $time }

## Profil et justificatifs

profile-created = profil créé
profile-updated = profil mis à jour
no-notice-choices = aucun (chaque type suit les avis par courriel)
keep-the-secret = conservez le secret maintenant : il ne sera plus jamais affiché
credential-revoked = révoqué : { $name } ({ $state })

## Entreprises, employés, groupes

terms-heading = Conditions générales, version { $version }
challenge-heading = entreprise { $business } ; version des conditions { $version }
accept-terms = Acceptez-vous les Conditions générales, version { $version } ? [o/N]
registered-you-are-bam = inscrite ; vous en êtes le gestionnaire du compte d'entreprise
requested = demande envoyée : { $name } (expire le { $time })
member-removed-no-role = { $member } n'a plus de rôle et a été retiré
approved = approuvée
ended = terminée
removed = retiré : { $name }
deleted = supprimé : { $name }
assigned = { $assignee } affecté à { $target } comme { $role } ({ $name })

## Décisions

allow-because = AUTORISÉ ({ $reason })
deny = REFUSÉ
deny-because = REFUSÉ ({ $reason })
role-facts = faits de rôle :
relationship-facts = faits de relation :
assignment-facts = faits d'affectation :

## Listes, fichiers et erreurs

none = (aucun)
next-page = page suivante : --page-token { $token }
more-items-remain = il reste des éléments après { $count } : lisez-les tous avec --all, ou continuez avec --page-token { $token }
wrote-records = { $count } enregistrements écrits dans { $path }
error-line = erreur : { $message } ({ $code })

## En-têtes de tableau

heading-action = ACTION
heading-actor = ACTEUR
heading-assignment = AFFECTATION
heading-business = ENTREPRISE
heading-client = CLIENT
heading-client-id = ID CLIENT
heading-clients = CLIENTS
heading-display-name = NOM AFFICHÉ
heading-email = COURRIEL
heading-expires = EXPIRE
heading-format = FORMAT
heading-group = GROUPE
heading-legal-name = NOM LÉGAL
heading-level = NIVEAU
heading-linked = LIÉ
heading-member = MEMBRE
heading-members = MEMBRES
heading-name = NOM
heading-note = NOTE
heading-program-account = COMPTE DE PROGRAMME
heading-programs = PROGRAMMES
heading-provider = FOURNISSEUR
heading-question = QUESTION
heading-question-id = ID QUESTION
heading-reason = MOTIF
heading-requester = DEMANDEUR
heading-resource = RESSOURCE
heading-role = RÔLE
heading-roles = RÔLES
heading-service = SERVICE
heading-state = ÉTAT
heading-target = CIBLE
heading-time = HEURE
heading-via-provider = PAR LE FOURNISSEUR
heading-your-roles = VOS RÔLES

## Libellés de champ

label-address = adresse
label-business = entreprise
label-business-managers = gestionnaires de l'entreprise
label-client = client
label-client-id = id client
label-client-secret = secret client
label-clients = clients
label-credential = justificatif
label-decision = décision
label-deleted = supprimé
label-direct-roles = rôles directs
label-effective-roles = rôles effectifs
label-email = courriel
label-email-notifications = avis par courriel
label-end-note = note de fin
label-end-reason = motif de fin
label-ended = terminée le
label-ended-by = terminée par
label-expires = expire
label-explanation = explication
label-group = groupe
label-groups = groupes
label-joined = arrivé le
label-language = langue
label-legal-name = nom légal
label-level = niveau
label-member = membre
label-members = membres
label-name = nom
label-notice-choices = choix par type d'avis
label-phone = téléphone
label-principal = principal
label-programs = programmes
label-provider = fournisseur
label-reason = motif
label-registered = inscrite le
label-relationship = relation
label-roles = rôles
label-started = début
label-state = état
label-terms-accepted = conditions acceptées
label-updated = mis à jour
label-visibility = visibilité

## Valeurs (les rôles restent en anglais : ce sont aussi des valeurs des commandes, --role editor)

value-active = actif
value-amount = montant
value-approved = approuvée
value-bam = bam
value-business = entreprise
value-date = date
value-editor = editor
value-en = en
value-ended = terminée
value-ended-by-client = terminée par le client
value-ended-by-provider = terminée par le fournisseur
value-expired = expiré
value-expired-user-own-submission = ses propres envois après expiration
value-fr = fr
value-no-relationship = aucune relation
value-no-role = aucun rôle
value-not-a-member = pas membre
value-not-assigned = non affecté
value-own-role = son propre rôle
value-pam = pam
value-pending = en attente
value-program = programme
value-program-not-covered = programme non couvert
value-provider-relationship = relation de fournisseur
value-reader = reader
value-rejected = rejetée
value-relationship-ended = relation terminée
value-revoked = révoqué
value-role-too-low = rôle insuffisant
value-self = soi-même
value-text = texte
value-visibility = visibilité
value-withdrawn = retirée
