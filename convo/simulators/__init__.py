"""Fakes of the providers' HTTP APIs, each as its provider documents it.

Each simulator module has a class that owns an ``aiohttp.web.Application`` (``.app``) with
the provider's paths, fields, auth and error shapes, records what convo sent (``.sent``) and
can deliver inbound messages and status callbacks to convo's webhook URLs, so a whole
conversation runs on loopback. ``convo simulator PROVIDER --port P`` serves one.
"""

SIMULATORS: dict[str, str] = {
    "vonage": "convo.simulators.vonage:VonageSimulator",
    "telefoon_sms": "convo.simulators.telefoon_sms:TelefoonSmsSimulator",
    "telefonie_sms": "convo.simulators.telefonie_sms:TelefonieSmsSimulator",
    "enco": "convo.simulators.enco:EncoSimulator",
    "telefoon_voice": "convo.simulators.telefoon_voice:TelefoonVoiceSimulator",
    "twilio": "convo.simulators.twilio_sms:TwilioSmsSimulator",
    "twilio_voice": "convo.simulators.twilio_voice:TwilioVoiceSimulator",
    "vonage_voice": "convo.simulators.vonage_voice:VonageVoiceSimulator",
}
