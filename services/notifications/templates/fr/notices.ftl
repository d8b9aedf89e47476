# Avis en français. Chaque avis a un -subject et un -body ; le service de notifications remplit
# les variables à partir de l'événement et de l'annuaire, après avoir retiré les caractères de
# contrôle et coupé les valeurs trop longues (voir docs/notifications.md). Texte brut.

relationship-request-received-subject = { $provider_name } demande à agir pour { $client_name }
relationship-request-received-body =
    Bonjour { $recipient_name },

    { $provider_name } (numéro d'entreprise { $provider }) a envoyé à { $client_name } (numéro d'entreprise { $client }) une demande pour agir en son nom comme fournisseur de services.

    Ouvrez une session pour l'examiner : approuvez-la, ou refusez-la en donnant une raison.

    { notice-footer }

# Commun à tous les avis : pourquoi la personne le reçoit. $recipient_business est l'entreprise
# par laquelle l'avis la concerne.
notice-footer = Vous recevez ce message en raison de votre rôle auprès de { $recipient_business }. Vous pouvez désactiver ces courriels dans votre profil, tous ou un type à la fois.

relationship-request-approved-subject = { $client_name } a approuvé la demande de { $provider_name }
relationship-request-approved-body =
    Bonjour { $recipient_name },

    { $client_name } (numéro d'entreprise { $client }) a approuvé la demande de { $provider_name } (numéro d'entreprise { $provider }) d'agir en son nom. La relation a commencé.

    { notice-footer }

relationship-request-rejected-subject = { $client_name } a refusé la demande de { $provider_name }
relationship-request-rejected-body =
    Bonjour { $recipient_name },

    { $client_name } (numéro d'entreprise { $client }) a refusé la demande de { $provider_name } (numéro d'entreprise { $provider }) d'agir en son nom.

    Raison donnée : { $reason }

    { notice-footer }

relationship-ended-subject = La relation entre { $provider_name } et { $client_name } a pris fin
relationship-ended-body =
    Bonjour { $recipient_name },

    { $ended_by_name } a mis fin, pour { $ended_by_business } ({ $ended_by_side ->
        [provider] le fournisseur de services
       *[client] le client
    }), à la relation entre { $provider_name } (numéro d'entreprise { $provider }) et { $client_name } (numéro d'entreprise { $client }).

    { $has_note ->
        [yes] Sa note : { $note }
       *[other] Aucune note n'a été laissée.
    }

    { notice-footer }

relationship-expired-subject = La relation entre { $provider_name } et { $client_name } a expiré
relationship-expired-body =
    Bonjour { $recipient_name },

    La relation entre { $provider_name } (numéro d'entreprise { $provider }) et { $client_name } (numéro d'entreprise { $client }) a atteint sa date d'expiration et a pris fin. Le client peut approuver une nouvelle demande pour la poursuivre.

    { notice-footer }

relationship-expiry-reminder-subject = La relation entre { $provider_name } et { $client_name } expire { $days ->
        [1] demain
       *[other] dans { $days } jours
    }
relationship-expiry-reminder-body =
    Bonjour { $recipient_name },

    La relation entre { $provider_name } (numéro d'entreprise { $provider }) et { $client_name } (numéro d'entreprise { $client }) expire le { $expire_date }, { $days ->
        [1] demain
       *[other] dans { $days } jours
    }. Pour la poursuivre, le fournisseur peut envoyer une nouvelle demande d'ici là.

    { notice-footer }

employee-request-received-subject = { $requester_name } demande à se joindre à { $business_name }
employee-request-received-body =
    Bonjour { $recipient_name },

    { $requester_name } demande à se joindre à { $business_name } (numéro d'entreprise { $business }) comme employé.

    { $has_note ->
        [yes] Sa note : { $note }
       *[other] Aucune note n'a été laissée.
    }

    Ouvrez une session pour examiner la demande : approuvez-la en accordant des rôles, ou refusez-la en donnant une raison.

    { notice-footer }

employee-request-approved-subject = Vous vous êtes joint à { $business_name }
employee-request-approved-body =
    Bonjour { $recipient_name },

    { $business_name } (numéro d'entreprise { $business }) a approuvé votre demande pour vous y joindre comme employé. Ouvrez une session pour voir les rôles qui vous ont été accordés.

    { notice-footer }

employee-request-rejected-subject = { $business_name } a refusé votre demande pour vous y joindre
employee-request-rejected-body =
    Bonjour { $recipient_name },

    { $business_name } (numéro d'entreprise { $business }) a refusé votre demande pour vous y joindre comme employé.

    Raison donnée : { $reason }

    { notice-footer }

credential-expiry-reminder-subject = L'identifiant machine { $credential_name } de { $business_name } expire { $days ->
        [1] demain
       *[other] dans { $days } jours
    }
credential-expiry-reminder-body =
    Bonjour { $recipient_name },

    L'identifiant machine { $credential_name } de { $business_name } (numéro d'entreprise { $business }) expire le { $expire_date }, { $days ->
        [1] demain
       *[other] dans { $days } jours
    }. Après cette date, les systèmes qui l'utilisent ne pourront plus se connecter.

    Connectez-vous pour créer un nouvel identifiant et remettre son secret à ces systèmes d'ici là.

    { notice-footer }
