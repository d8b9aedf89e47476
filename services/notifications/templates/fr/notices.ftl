# Avis en français. Chaque avis a un -subject et un -body ; le service de notifications remplit
# les variables à partir de l'événement et de l'annuaire, après avoir retiré les caractères de
# contrôle et coupé les valeurs trop longues (voir docs/notifications.md). Texte brut.

relationship-request-received-subject = { $provider_name } demande à agir pour { $client_name }
relationship-request-received-body =
    Bonjour { $recipient_name },

    { $provider_name } (numéro d'entreprise { $provider }) a envoyé à { $client_name } (numéro d'entreprise { $client }) une demande pour agir en son nom comme fournisseur de services.

    Ouvrez une session pour l'examiner : approuvez-la, ou refusez-la en donnant une raison.

    Vous recevez ce message parce que vous gérez les comptes d'entreprise de { $client_name }. Vous pouvez désactiver ces courriels dans votre profil.
