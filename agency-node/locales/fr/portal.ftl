# Le portail de consentement pour les survivants, en français. Il doit avoir
# exactement les mêmes messages que l'anglais (un test le vérifie). Des mots simples.

portal-title = Votre consentement
skip-to-content = Aller au contenu principal
quick-exit = Sortie rapide
quick-exit-hint = Quitte ce site tout de suite pour une page neutre.
language-label = Langue
language-apply = Changer
sign-out = Se déconnecter
footer-note = Ce portail n'utilise aucun service extérieur. Il garde seulement un cookie de session, qui s'efface quand vous vous déconnectez ou partez.

sign-in-heading = Se connecter
sign-in-intro = Utilisez le code de consentement donné par la personne qui suit votre dossier et le PIN que vous avez choisi. La première fois, laissez le PIN vide : vous en choisirez un ensuite.
code-label = Code de consentement
code-hint = 16 lettres et chiffres, par exemple ABCD-EFGH-JKMN-PQRS
pin-label = PIN
pin-hint = 6 à 12 chiffres
sign-in-button = Se connecter
sign-in-refused = Ce code et ce PIN ne correspondent pas. Vérifiez-les et réessayez.
sign-in-locked = Trop d'essais. Ce code est bloqué jusqu'à { $time } (UTC). La personne qui suit votre dossier peut vous donner un nouveau code.

choose-pin-heading = Choisissez votre PIN
choose-pin-intro = Vous aurez besoin de ce PIN avec votre code à chaque connexion. Ne le donnez à personne. La personne qui suit votre dossier ne le connaîtra pas.
new-pin-label = Nouveau PIN
confirm-pin-label = Le même PIN encore une fois
choose-pin-button = Enregistrer le PIN
pin-invalid = Un PIN a de 6 à 12 chiffres.
pin-mismatch = Les deux PIN ne sont pas identiques.

home-heading = Votre dossier chez { $agency }
grants-heading = Qui peut voir vos informations
grants-none = Aucune autre organisation ne peut voir vos informations.
grant-agency = Organisation
grant-parts = Ce qu'elle peut voir
grant-purposes = Dans quel but
grant-period = Jusqu'à quand
grant-until = Jusqu'au { $date }
grant-no-end = Jusqu'à ce que vous le retiriez
grant-status = État
status-active = Actif
status-revoked = Retiré
status-expired = Terminé
status-pending = Pas encore commencé
revoke-button = Retirer
give-permission-link = Donner une autorisation à une organisation

history-heading = Qui a consulté votre dossier
history-none = Personne n'a encore consulté votre dossier.
history-when = Quand
history-who = Qui
history-purpose = Pourquoi
history-seen = Ce qui a été vu
history-nothing-seen = Rien
break-glass-badge = Accès d'urgence
break-glass-explained = Un accès d'urgence veut dire que quelqu'un a utilisé la règle d'urgence parce qu'il pensait que vous étiez en danger. Chaque accès d'urgence est vérifié.

referrals-heading = Vos orientations
referrals-none = Vous n'avez aucune orientation.
referral-to = Vers
referral-service = Service
referral-status = État
referral-updated = Dernier changement

receipts-heading = Vos reçus
receipts-intro = Un reçu prouve ce que vous avez accepté ou retiré. Il est signé par { $agency }.
receipts-none = Pas encore de reçus.
receipt-download = Télécharger le reçu
receipt-given = Autorisation donnée
receipt-withdrawn = Autorisation retirée

grant-heading = Donner une autorisation à une organisation
grant-intro = Choisissez qui peut voir quelles parties de votre dossier, dans quel but et jusqu'à quand. Vous pouvez la retirer à tout moment.
grant-agency-label = Organisation
grant-categories-legend = Quelles parties de votre dossier
grant-purposes-legend = Dans quel but
grant-until-label = Jusqu'au (date)
grant-until-hint = Au plus { $days } jours à partir d'aujourd'hui.
grant-review-button = Vérifier
cancel = Annuler
grant-confirm-heading = Vérifiez avant d'accepter
grant-confirm-summary = { $agency } pourra voir :
grant-confirm-purposes = Seulement pour :
grant-confirm-button = Oui, donner l'autorisation
revoke-confirm-heading = Retirer l'autorisation ?
revoke-confirm-summary = { $agency } ne verra plus ces informations, dès sa prochaine demande.
revoke-confirm-button = Oui, retirer
done-heading = C'est fait
grant-done = Autorisation donnée.
revoke-done = Autorisation retirée. Cela s'applique tout de suite.
home-link = Retour à votre dossier
error-no-agency = Choisissez une organisation.
error-no-category = Choisissez au moins une partie de votre dossier.
error-no-purpose = Choisissez au moins un but.
error-bad-date = Choisissez une date après aujourd'hui et dans la durée permise.
error-heading = Un problème est survenu
error-csrf = Ce formulaire a expiré. Revenez en arrière, rechargez la page et réessayez.
error-session = Votre session est terminée. Veuillez vous reconnecter.
error-not-found = Cette page n'existe pas.
error-internal = Un problème est survenu de notre côté. Veuillez réessayer plus tard.

category-identity = Qui vous êtes (nom, date de naissance, documents)
category-contact = Comment vous joindre et où vous logez
category-case = Votre dossier : besoins, services et notes
category-health = Notes de santé
category-legal = Questions juridiques

purpose-case-management = Suivre votre dossier
purpose-referral = Vous orienter vers un service
purpose-service-coordination = Coordonner vos services
purpose-shelter-placement = Vous trouver un endroit sûr où loger
purpose-legal-assistance = Aide juridique
purpose-health-care = Soins de santé
purpose-investigation = Une enquête pénale
purpose-audit = Contrôler les registres (audit)
purpose-emergency = Une urgence

kind-shelter = foyer d'accueil
kind-legal-aid = aide juridique
kind-health-clinic = centre de santé
kind-labour-inspectorate = inspection du travail
kind-child-protection = protection de l'enfance
kind-law-enforcement = police ou forces de l'ordre
kind-outreach = équipe de terrain
kind-oversight = contrôle

referral-status-pending = En attente de réponse
referral-status-accepted = Acceptée
referral-status-declined = Refusée
referral-status-completed = Terminée
referral-status-withdrawn = Retirée

service-shelter = Hébergement
service-legal-aid = Aide juridique
service-medical = Soins médicaux
service-psychosocial = Écoute et soutien
service-interpretation = Interprétariat
service-employment = Travail
service-education = Éducation
service-repatriation = Rentrer chez soi
