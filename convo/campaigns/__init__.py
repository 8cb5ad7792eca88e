"""Campaigns: one flow started on many contacts, stored, paced and resumable.

* :mod:`convo.campaigns.model`    the values: a campaign, its recipients, quiet hours, counts;
* :mod:`convo.campaigns.storage`  what a store keeps of them (:class:`CampaignStore`);
* :mod:`convo.campaigns.intake`   contacts (a JSON list or CSV text) to recipient rows, with
  invalid and duplicate rows reported by line;
* :mod:`convo.campaigns.runner`   the background loop that starts recipients, paced, outside
  their quiet hours, never twice.
"""
