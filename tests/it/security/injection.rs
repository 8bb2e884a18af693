//! Values from outside never change where a call goes: ids in Whapi.Cloud paths and template
//! values in webhook URLs are encoded or refused.
