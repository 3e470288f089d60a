# Portal de consentimiento para sobrevivientes, en español. Debe tener
# exactamente los mismos mensajes que el inglés (una prueba lo comprueba). Palabras sencillas.

portal-title = Su consentimiento
skip-to-content = Ir al contenido principal
quick-exit = Salida rápida
quick-exit-hint = Sale de este sitio al instante y abre una página neutral.
language-label = Idioma
language-apply = Cambiar
sign-out = Cerrar sesión
footer-note = Este portal no usa servicios externos. Solo guarda una cookie de sesión, que se borra al cerrar sesión o salir.

sign-in-heading = Entrar
sign-in-intro = Use el código de consentimiento que le dio la persona que lleva su caso y el PIN que usted eligió. La primera vez, deje el PIN vacío: después elegirá uno.
code-label = Código de consentimiento
code-hint = 16 letras y números, por ejemplo ABCD-EFGH-JKMN-PQRS
pin-label = PIN
pin-hint = De 6 a 12 números
sign-in-button = Entrar
sign-in-refused = El código y el PIN no coinciden. Revíselos e inténtelo de nuevo.
sign-in-locked = Demasiados intentos. Este código está bloqueado hasta { $time } (UTC). La persona que lleva su caso puede darle un código nuevo.

choose-pin-heading = Elija su PIN
choose-pin-intro = Necesitará este PIN con su código cada vez que entre. No se lo diga a nadie. La persona que lleva su caso no lo sabrá.
new-pin-label = PIN nuevo
confirm-pin-label = El mismo PIN otra vez
choose-pin-button = Guardar PIN
pin-invalid = El PIN debe tener de 6 a 12 números.
pin-mismatch = Los dos PIN no son iguales.

home-heading = Su expediente en { $agency }
grants-heading = Quién puede ver su información
grants-none = Ninguna otra organización puede ver su información.
grant-agency = Organización
grant-parts = Qué pueden ver
grant-purposes = Para qué
grant-period = Hasta
grant-until = Hasta el { $date }
grant-no-end = Hasta que usted lo retire
grant-status = Estado
status-active = Activo
status-revoked = Retirado
status-expired = Terminado
status-pending = Todavía no ha empezado
revoke-button = Retirar
give-permission-link = Dar permiso a una organización

history-heading = Quién ha mirado su expediente
history-none = Nadie ha mirado su expediente todavía.
history-when = Cuándo
history-who = Quién
history-purpose = Por qué
history-seen = Qué vieron
history-nothing-seen = Nada
break-glass-badge = Acceso de emergencia
break-glass-explained = Acceso de emergencia significa que alguien usó la regla de emergencia porque creyó que usted estaba en peligro. Cada acceso de emergencia se revisa.

referrals-heading = Sus derivaciones
referrals-none = No tiene derivaciones.
referral-to = A
referral-service = Servicio
referral-status = Estado
referral-updated = Último cambio

receipts-heading = Sus comprobantes
receipts-intro = Un comprobante demuestra lo que usted aceptó o retiró. Está firmado por { $agency }.
receipts-none = Todavía no hay comprobantes.
receipt-download = Descargar comprobante
receipt-given = Permiso dado
receipt-withdrawn = Permiso retirado

grant-heading = Dar permiso a una organización
grant-intro = Elija quién puede ver qué partes de su expediente, para qué y hasta cuándo. Puede retirarlo en cualquier momento.
grant-agency-label = Organización
grant-categories-legend = Qué partes de su expediente
grant-purposes-legend = Para qué
grant-until-label = Hasta (fecha)
grant-until-hint = Como máximo { $days } días desde hoy.
grant-review-button = Revisar
cancel = Cancelar
grant-confirm-heading = Revise antes de aceptar
grant-confirm-summary = { $agency } podrá ver:
grant-confirm-purposes = Solo para:
grant-confirm-button = Sí, dar permiso
revoke-confirm-heading = ¿Retirar el permiso?
revoke-confirm-summary = { $agency } ya no verá esta información, a partir de la próxima vez que la pida.
revoke-confirm-button = Sí, retirar
done-heading = Hecho
grant-done = Permiso dado.
revoke-done = Permiso retirado. Tiene efecto de inmediato.
home-link = Volver a su expediente
error-no-agency = Elija una organización.
error-no-category = Elija al menos una parte de su expediente.
error-no-purpose = Elija al menos un motivo.
error-bad-date = Elija una fecha posterior a hoy y dentro del plazo permitido.
error-heading = Algo salió mal
error-csrf = Este formulario ha caducado. Vuelva atrás, recargue la página e inténtelo de nuevo.
error-session = Su sesión ha terminado. Por favor, entre de nuevo.
error-not-found = Esa página no existe.
error-internal = Algo salió mal de nuestro lado. Por favor, inténtelo más tarde.

category-identity = Quién es usted (nombre, fecha de nacimiento, documentos)
category-contact = Cómo contactarle y dónde se aloja
category-case = Su caso: necesidades, servicios y notas
category-health = Notas de salud
category-legal = Asuntos legales

purpose-case-management = Gestionar su caso
purpose-referral = Derivarle a un servicio
purpose-service-coordination = Coordinar sus servicios
purpose-shelter-placement = Buscarle un lugar seguro donde quedarse
purpose-legal-assistance = Ayuda legal
purpose-health-care = Atención de salud
purpose-investigation = Una investigación penal
purpose-audit = Revisar los registros (auditoría)
purpose-emergency = Una emergencia

kind-shelter = albergue
kind-legal-aid = asistencia legal
kind-health-clinic = clínica de salud
kind-labour-inspectorate = inspección de trabajo
kind-child-protection = protección de la infancia
kind-law-enforcement = policía o fuerzas del orden
kind-outreach = trabajo de calle
kind-oversight = supervisión

referral-status-pending = Esperando respuesta
referral-status-accepted = Aceptada
referral-status-declined = Rechazada
referral-status-completed = Completada
referral-status-withdrawn = Retirada

service-shelter = Albergue
service-legal-aid = Asistencia legal
service-medical = Atención médica
service-psychosocial = Apoyo y orientación psicológica
service-interpretation = Interpretación
service-employment = Trabajo
service-education = Educación
service-repatriation = Volver a casa
